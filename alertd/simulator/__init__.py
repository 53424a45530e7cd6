"""Fake ELEMENT and Navixy servers on 127.0.0.1: they stand in for the real services in the tests and in `alertd demo`, speaking the protocols of shared/seeds as alertd sees them."""
