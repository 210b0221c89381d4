from richness.cli import main

main()
