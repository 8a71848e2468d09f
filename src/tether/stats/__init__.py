"""Proportion estimators and tests: Wilson intervals, betting e-processes, Wald's SPRT. Pure."""
