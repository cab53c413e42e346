"""Metrics for generated images: FID/KID features from a classifier trained on the dataset itself (domain.py)."""

from difflab.metrics.domain import DomainClassifier, DomainFeatures, load_domain_classifier, save_domain_classifier

__all__ = ["DomainClassifier", "DomainFeatures", "load_domain_classifier", "save_domain_classifier"]
