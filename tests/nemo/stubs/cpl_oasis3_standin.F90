!> Stand-in of NEMO's cpl_oasis3 (after the oceanbridge patch that makes ncomp_id public), for the OASIS compile check.
MODULE cpl_oasis3
   IMPLICIT NONE
   INTEGER, PUBLIC ::   ncomp_id = -1
END MODULE cpl_oasis3
