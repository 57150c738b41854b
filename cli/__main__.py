from imgvault.cli import main

main()
