from streams.normalize.main import main

main()
