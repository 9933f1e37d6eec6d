"""Handler code of personalize_export, shipped in the wheel and deployed as the Lambda asset."""
