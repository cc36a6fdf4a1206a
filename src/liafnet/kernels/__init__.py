"""Optional fused kernels. :mod:`liafnet.kernels.triton_liaf` needs Triton (the ``triton`` extra)."""
