"""`python train.py [overrides]`: train and test one model (see README)."""
from liafnet.cli.train import main

if __name__ == "__main__":
    main()
