"""`python eval.py ckpt_path=...`: re-test a saved checkpoint (see README)."""
from liafnet.cli import eval_main

if __name__ == "__main__":
    eval_main()
