"""synthreg.crypto"""
