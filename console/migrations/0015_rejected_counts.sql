-- Rejected frames are sampled per peer (see console/rejected.py): a "suppressed" row stands for
-- `count` frames that were only counted. Every other row is one frame.
ALTER TABLE rejected_frames ADD COLUMN count integer NOT NULL DEFAULT 1 CHECK (count > 0);
