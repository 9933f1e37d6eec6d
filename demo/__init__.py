"""The demo app's stack: a small Personalize dataset, imported and then exported."""
