!> Test driver of the CROCO adapter's lifecycle (croco_patches/obr_croco_cpl.F90) without CROCO:
!> reads namelist_obridge, starts MPI (or the bridge) as CROCO's main.F would, checks the param.h
!> decomposition given on the command line against mpirun -np, then finalizes.
!>   mpirun -np N obr_croco_driver NP_XI NP_ETA [NNODES]     (NNODES < NP_XI*NP_ETA: MPI_NOLAND)
program obr_croco_driver
   use obr_croco_cpl, only: cpl_start, cpl_finalize
   implicit none
   integer :: icomm, inp(3), jarg
   character(len=16) :: cl
   inp(3) = -1
   do jarg = 1, command_argument_count()
      call get_command_argument(jarg, cl)
      read(cl, *) inp(jarg)
   end do
   if (inp(3) > 0) then
      call cpl_start(icomm, inp(1), inp(2), inp(3))
   else
      call cpl_start(icomm, inp(1), inp(2))
   end if
   write(*, '(a)') 'obr_croco_driver: started'
   call cpl_finalize()
end program obr_croco_driver
