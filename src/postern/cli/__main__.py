from postern.cli import main

main()
