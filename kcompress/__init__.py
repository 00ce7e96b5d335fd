"""kcompress: language models studied through compression."""
