from streams.transcribe.main import main

main()
