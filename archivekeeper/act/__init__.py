"""The only hands that change user files (fsops: fd-relative, re-verified), the executor that
carries a plan out through them (trash, restore, purge, crash recovery), and the audit log that
records each step before it happens."""
