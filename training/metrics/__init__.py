"""Evaluation metrics: SWD (Karras et al. 2018), FID/KID/IS via torchmetrics, pix2pix metrics."""
