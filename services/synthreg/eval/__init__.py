"""synthreg.eval"""
