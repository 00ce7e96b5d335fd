"""Token roles and part names shared by the generator, the Bayes code and the models."""

NAME, SYNTAX, VALUE, END = 0, 1, 2, 3
NUM_ROLES = 4
# Row padding (the tail of a sentence-packed row): outside every per-role sum, every loss
# and every token count (one_hot(PAD, NUM_ROLES) is all zeros).
PAD = NUM_ROLES
ROLE_NAMES = ("name", "syntax", "value", "end")
# The entity-choice part of the name role: the first name token of each sentence, which
# carries the Bayes code's PYCRP choice bits (a new name's bits sit on the last name
# token). Its limit per sentence is the entropy of the entity distribution, not 0. Index of
# its Bayes bits after the NUM_ROLES role sums (`source.bayes_bits_by_role`).
ENTITY_PART = NUM_ROLES

# Parts of the Bayes code of one sentence (SPEC section 3), in bits.
BAYES_PARTS = ("syntax", "entity", "name", "value")
