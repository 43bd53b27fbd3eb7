from streams.caption.main import main

main()
