"""The Hydra configs stay at the top of the checkout (conf/) and ship inside the package as difflab/conf, where
difflab.cli.config_dir finds them; pyproject.toml alone cannot map a folder outside src/ into the package.
Folders of data files are listed as (namespace) packages, as setuptools asks for files it should ship."""

from setuptools import find_namespace_packages, setup

PACKAGES = find_namespace_packages("src", include=["difflab*"], exclude=["*__pycache__*"])
CONF = ["difflab.conf", *(f"difflab.conf.{p}" for p in find_namespace_packages("conf", exclude=["*__pycache__*"]))]

setup(packages=[*PACKAGES, *CONF], package_dir={"": "src", "difflab.conf": "conf"})
