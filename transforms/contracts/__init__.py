"""What a source promises, as data: the contract model and its loading (``model``), the named
checks a contract's ``severity`` addresses (``checks``), the code lists and label resolvers
(``codelists``), the mirror pairs (``mirror_pairs``) and the generated reference (``docs``).

Nothing here reads a landing file or touches the warehouse.
"""
