"""scibind's code generation step (dev tooling; never imported at run time).

Run ``python -m codegen --help``.
"""
