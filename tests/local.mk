# Check suite (one behaviour suite over every backend).
