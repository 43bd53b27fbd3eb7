"""caption stage: images on wa.media -> descriptions on wa.captions (an OpenAI vision model)."""
