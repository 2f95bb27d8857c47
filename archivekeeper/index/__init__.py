"""Reading the drives and keeping the SQLite index: volume markers, scans, file lists, EXIF
dates, and the store that owns every SQL statement. Never changes a user file."""
