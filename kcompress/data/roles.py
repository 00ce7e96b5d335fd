"""Token roles and part names shared by the generator, the Bayes code and the models."""

NAME, SYNTAX, VALUE, END = 0, 1, 2, 3
NUM_ROLES = 4
# Row padding (the tail of a sentence-packed row): outside every per-role sum, every loss
# and every token count (one_hot(PAD, NUM_ROLES) is all zeros).
PAD = NUM_ROLES
ROLE_NAMES = ("name", "syntax", "value", "end")

# Parts of the Bayes code of one sentence (SPEC section 3), in bits.
BAYES_PARTS = ("syntax", "entity", "name", "value")
