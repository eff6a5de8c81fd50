"""Builds the ledger's compiled replay core; everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("qm_pipeline.lib.ledger.*", ["qm_pipeline/lib/ledger/*.pyx"])],
    compiler_directives={"language_level": 3},
))
