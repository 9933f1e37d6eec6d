"""The custom-resource handler that runs Personalize dataset export jobs."""
