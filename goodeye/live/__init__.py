"""Live URLs and scopes (README "Live URLs and the CDN"); the CDN they share paths with is goodeye/cdn/."""
