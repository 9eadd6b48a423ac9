"""Numerical theory of TD learning dynamics (sections 4.1-4.3 and appendices A, C): numpy and scipy."""
