from ezrobot.cli import main
import sys
sys.exit(main())
