"""Training loops, data, metrics and the command line for the three GAN families."""
