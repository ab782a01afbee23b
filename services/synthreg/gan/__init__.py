"""synthreg.gan"""
