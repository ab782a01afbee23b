"""synthreg.data"""
