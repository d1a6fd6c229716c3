"""Third-party private APIs, each behind one small module whose test fails loudly when an upgrade changes it."""
