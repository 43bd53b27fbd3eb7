from streams.media.main import main

main()
