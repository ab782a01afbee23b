"""synthreg.ledger"""
