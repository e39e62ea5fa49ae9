!> Test driver: obr_init with a status argument returns a malformed OBRIDGE_* variable's error
!! through kinfo (and obr_last_error) instead of aborting.
program init_kinfo
   use obridge
   implicit none
   integer :: comm   !< the local communicator (unset: init fails before MPI starts)
   integer :: info   !< obr_init's status
   call obr_init('ocean', comm, info)
   write (*, '(a,i0)') 'kinfo ', info
   write (*, '(a)') 'error: '//obr_last_error()
end program init_kinfo
