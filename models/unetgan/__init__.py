"""U-Net GAN (Schonfeld, Schiele, Khoreva, "A U-Net Based Discriminator for Generative
Adversarial Networks", CVPR 2020): BigGAN's generator and the U-Net discriminator (`networks`,
built from BigGAN's blocks in `biggan_layers`) and the family's hooks (`hooks`)."""
