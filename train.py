"""`python train.py [overrides]`: train and test one model (see README)."""
from liafnet.cli import train_main

if __name__ == "__main__":
    train_main()
