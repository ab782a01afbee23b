"""synthreg.network"""
