-- The store finds accounts by number alone (every batch touches their last-seen time), and so do the
-- alarm engine and the receivers' directory. The unique (prefix, number) index leads with the prefix.
CREATE INDEX accounts_number ON accounts (number);
