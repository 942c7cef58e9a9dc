"""pix2pix (Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017): the U-Net generator and PatchGAN discriminator (`networks`), the paper's
test-time computation (`translation`), the mapping of the authors' reference checkpoints
(`reference`) and the family's hooks (`hooks`)."""
