"""Document intake, storage, pages, annotations, signatures and print jobs (issue 5)."""
