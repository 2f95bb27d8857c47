from archivekeeper.cli import main

main()
