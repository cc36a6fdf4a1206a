"""`python eval.py ckpt_path=...`: re-test a saved checkpoint (see README)."""
from liafnet.cli.eval import main

if __name__ == "__main__":
    main()
