"""A toy fourth model family, kept in the test suite: it proves that adding a family is one
package (`models/`: its networks and hooks), one table row (`row.py`) and one training module
(`training.py`), with no file of ganserve touched.

The stack loads it when `GANSERVE_FAMILY_MODULES=tests.toy_family.row` is set (and the repository
root is importable); `tests/toy_family/test_service.py` trains, samples, inspects, filters,
projects and exports one through the real service. Its networks are a tiny DCGAN-like pair
(Radford, Metz, Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016) whose discriminator also gives a per-pixel logit
map, so every capability of `models.family` has something to call.
"""
