"""A small synthetic NEMO-5.0-like tree: just the lines the installer's anchors need."""
from __future__ import annotations

import os
from pathlib import Path

NEMOGCM = """\
MODULE nemogcm
   USE lib_mpp        ! distributed memory computing
   USE timing         ! timing
CONTAINS
   SUBROUTINE nemo_gcm
      CALL nemo_closefile
   END SUBROUTINE nemo_gcm
   SUBROUTINE nemo_init
      IF( lk_oasis ) THEN
         CALL mpp_start( ilocal_comm )
      ELSE
         CALL mpp_start( )
      ENDIF
                           CALL  istate_init( Nbb, Nnn, Naa )    ! ocean initial state
                           CALL    tide_init                     ! tidal harmonics
   END SUBROUTINE nemo_init
   SUBROUTINE nemo_closefile
   END SUBROUTINE nemo_closefile
END MODULE nemogcm
"""
STPRK3 = """\
MODULE stprk3
   USE stp2d          ! external mode solver
CONTAINS
   SUBROUTINE stp_RK3( kstp )
                         CALL stp_ctl      ( kstp, Nbb )
   END SUBROUTINE stp_RK3
END MODULE stprk3
"""
STPMLF = """\
MODULE stpmlf
   USE domqco         ! quasi-eulerian coordinate
CONTAINS
   SUBROUTINE stp_MLF( kstp )
                         CALL stp_ctl      ( kstp, Nnn )
   END SUBROUTINE stp_MLF
END MODULE stpmlf
"""
CPL_OASIS3 = """\
MODULE cpl_oasis3
   INTEGER                    ::   ncomp_id          ! id returned by oasis_init_comp
END MODULE cpl_oasis3
"""
NAMELIST_REF = """\
!-----------------------------------------------------------------------
&namrun        !   parameters of the run
!-----------------------------------------------------------------------
   nn_it000    =       1   !  first time step
/
"""
FCM = "bld::tool::fppkeys   key_linssh key_vco_1d key_RK3\n"


def make_tree(root: Path, cfg: str = "GYRE_OCE") -> Path:
    """Write the tree under ``root``; returns ``root`` (the --nemo argument)."""
    files = {"src/OCE/nemogcm.F90": NEMOGCM, "src/OCE/stprk3.F90": STPRK3, "src/OCE/stpmlf.F90": STPMLF,
             "src/OCE/SBC/cpl_oasis3.F90": CPL_OASIS3, "cfgs/SHARED/namelist_ref": NAMELIST_REF,
             f"cfgs/{cfg}/cpp_{cfg}.fcm": FCM, f"cfgs/{cfg}/EXP00/namelist_cfg": "&namrun\n/\n"}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    os.symlink("../../SHARED/namelist_ref", root / f"cfgs/{cfg}/EXP00/namelist_ref")
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every file's text under ``root`` (links followed), to compare trees."""
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}
