"""Tests of the GAN families the training loop trains."""
