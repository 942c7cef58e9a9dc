"""Progressive GAN (Karras, Aila, Laine, Lehtinen, "Progressive Growing of GANs for Improved
Quality, Stability, and Variation", ICLR 2018): the growing generator and critic (`networks`,
built from the equalised-learning-rate layers in `layers`) and the family's hooks (`hooks`)."""
