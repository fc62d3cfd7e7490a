-- Schema version 5: a refused file is not retried forever (issue 16).
--
-- rules_sha256: the fingerprint of what judged the file (its contract, its suites, the code lists;
-- transforms.storage.manifest.rules_fingerprint). A later run skips a refused file while the fingerprint is
-- unchanged: the same bytes under the same rules would be refused the same way. Correct the file
-- (new bytes) or the rules (a new fingerprint) and it is tried again.
-- dismissed_*: an engineer set the refused file aside (`omh dismiss`): who, when and why.
ALTER TABLE file_manifest ADD COLUMN rules_sha256 VARCHAR;
ALTER TABLE file_manifest ADD COLUMN dismissed_at TIMESTAMP;
ALTER TABLE file_manifest ADD COLUMN dismissed_by VARCHAR;
ALTER TABLE file_manifest ADD COLUMN dismiss_reason VARCHAR;
