from streams.extract.main import main

main()
